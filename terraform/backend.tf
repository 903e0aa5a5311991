# State lives in the bucket made by terraform/bootstrap: SSE-KMS, versioned, public access
# blocked, and locked with an S3 lock file (no DynamoDB table needed since Terraform 1.10).
# The bucket and key differ per environment and come from environments/<env>.s3.tfbackend:
#
#   terraform init -backend-config=environments/production.s3.tfbackend
terraform {
  backend "s3" {
    region       = "ap-northeast-1"
    encrypt      = true
    use_lockfile = true
  }
}
