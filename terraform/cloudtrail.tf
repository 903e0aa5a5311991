# API audit trail: who called which AWS API (GetSecretValue, kms:Decrypt, s3:GetObject on the
# residents' files...), the first source for the scope of a suspected leak. Multi-region so
# that a call made outside Tokyo is recorded too (the logs themselves stay in this bucket in
# ap-northeast-1), with log file validation, KMS encryption and a copy in CloudWatch Logs,
# all kept three years.

module "cloudtrail_bucket" {
  source = "./modules/secure_bucket"

  name              = "${local.name}-cloudtrail-${var.aws_account_id}"
  kms_key_arn       = aws_kms_key.logs.arn
  access_log_bucket = aws_s3_bucket.logs.id
  extra_policy_json = data.aws_iam_policy_document.cloudtrail_bucket.json

  expiry_rules = [
    {
      id              = "keep-three-years"
      prefix          = "AWSLogs/"
      expiration_days = 1096
      noncurrent_days = 30
    },
  ]
}

data "aws_iam_policy_document" "cloudtrail_bucket" {
  statement {
    sid       = "CloudTrailAclCheck"
    actions   = ["s3:GetBucketAcl"]
    resources = ["arn:aws:s3:::${local.name}-cloudtrail-${var.aws_account_id}"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = ["arn:aws:cloudtrail:${var.aws_region}:${var.aws_account_id}:trail/${local.name}"]
    }
  }

  statement {
    sid       = "CloudTrailWrite"
    actions   = ["s3:PutObject"]
    resources = ["arn:aws:s3:::${local.name}-cloudtrail-${var.aws_account_id}/AWSLogs/${var.aws_account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = ["arn:aws:cloudtrail:${var.aws_region}:${var.aws_account_id}:trail/${local.name}"]
    }
  }
}

resource "aws_cloudwatch_log_group" "cloudtrail" {
  name              = "/sesshu/${var.environment}/cloudtrail"
  retention_in_days = local.log_retention_days_audit
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_iam_role" "cloudtrail" {
  name = "${local.name}-cloudtrail"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "cloudtrail.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceArn" = "arn:aws:cloudtrail:${var.aws_region}:${var.aws_account_id}:trail/${local.name}" }
      }
    }]
  })
}

resource "aws_iam_role_policy" "cloudtrail" {
  name = "write-cloudwatch-logs"
  role = aws_iam_role.cloudtrail.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = "${aws_cloudwatch_log_group.cloudtrail.arn}:log-stream:*"
    }]
  })
}

resource "aws_cloudtrail" "main" {
  #checkov:skip=CKV_AWS_252:no SNS delivery notifications; the trail is read through CloudWatch Logs and S3
  name                          = local.name
  s3_bucket_name                = module.cloudtrail_bucket.id
  kms_key_id                    = aws_kms_key.logs.arn
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.cloudtrail.arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.cloudtrail.arn

  # Management events (KMS, Secrets Manager, IAM...) and object-level access to the residents'
  # files and the audit anchors.
  advanced_event_selector {
    name = "management-events"
    field_selector {
      field  = "eventCategory"
      equals = ["Management"]
    }
  }

  advanced_event_selector {
    name = "s3-data-events-on-personal-files-and-anchors"
    field_selector {
      field  = "eventCategory"
      equals = ["Data"]
    }
    field_selector {
      field  = "resources.type"
      equals = ["AWS::S3::Object"]
    }
    field_selector {
      field       = "resources.ARN"
      starts_with = ["${module.files_bucket.arn}/", "${module.audit_anchor_bucket.arn}/"]
    }
  }

  depends_on = [module.cloudtrail_bucket]
}
