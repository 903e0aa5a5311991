# Every resource of Sesshu lives in ap-northeast-1 (Tokyo). The region is a variable so that
# it is visible in one place, and its validation refuses anything else. There is deliberately
# no second (aliased) provider: nothing in this configuration may live in another region.
provider "aws" {
  region              = var.aws_region
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = {
      Project     = "sesshu"
      Environment = var.environment
      ManagedBy   = "terraform"
      DataRegion  = var.aws_region
    }
  }
}
