# --- Server access logs and load balancer access logs --------------------------------------
# S3 server access logging and ALB access logging can only write to a bucket encrypted with
# SSE-S3, so this one bucket does not use KMS. It holds no personal data (URLs carry none,
# ASVS 14.2.1) and keeps the logs three years.

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_145:S3 server access logs and ALB access logs cannot be delivered to an SSE-KMS bucket; SSE-S3 is used
  #checkov:skip=CKV_AWS_18:this is the access-log target bucket itself; logging it into itself would loop
  #checkov:skip=CKV_AWS_144:cross-region replication would copy data out of ap-northeast-1
  bucket        = "${local.name}-logs-${var.aws_account_id}"
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket = aws_s3_bucket.logs.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_notification" "logs" {
  bucket      = aws_s3_bucket.logs.id
  eventbridge = true
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "keep-three-years"
    status = "Enabled"

    filter {}

    transition {
      days          = 90
      storage_class = "GLACIER_IR"
    }

    expiration {
      days = 1096
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

data "aws_iam_policy_document" "logs_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.logs.arn,
      "${aws_s3_bucket.logs.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.aws_account_id]
    }
  }

  # ap-northeast-1 delivers ALB access logs from the regional Elastic Load Balancing account.
  statement {
    sid       = "AlbAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/AWSLogs/${var.aws_account_id}/*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::582318560864:root"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# --- Files: django-storages (AWS_STORAGE_BUCKET_NAME) ---------------------------------------
# Keys are <area>/<tenant prefix>/... (tenants.storage), <tenant prefix> being
# tenants/<schema> for a municipality and platform for the control plane:
#   uploads/...  files sent in (registry CSVs, personal data in plaintext until processed):
#                deleted by the application once imported, here after uploads_expiry_days
#   exports/...  generated files (registry error lists, activation codes, sealed under the
#                tenant key): deleted here after exports_expiry_days
# The application refuses to store anything outside these two areas, so every object it
# writes expires (tests/sesshu/test_storage_prefixes.py).

module "files_bucket" {
  source = "./modules/secure_bucket"

  name              = "${local.name}-files-${var.aws_account_id}"
  kms_key_arn       = aws_kms_key.storage.arn
  access_log_bucket = aws_s3_bucket.logs.id

  expiry_rules = [
    {
      id              = "expire-uploads"
      prefix          = "uploads/"
      expiration_days = var.uploads_expiry_days
      noncurrent_days = 1
    },
    {
      id              = "expire-exports"
      prefix          = "exports/"
      expiration_days = var.exports_expiry_days
      noncurrent_days = 1
    },
  ]
}

# --- Audit anchors ---------------------------------------------------------------------------
# The worker periodically writes the head hash of every tenant's audit chain here. Object Lock
# in compliance mode: nobody, not even the account root, can delete or shorten the retention
# of an anchor for three years, so a rewritten audit chain no longer matches its anchors.

module "audit_anchor_bucket" {
  source = "./modules/secure_bucket"

  name              = "${local.name}-audit-anchors-${var.aws_account_id}"
  kms_key_arn       = aws_kms_key.storage.arn
  access_log_bucket = aws_s3_bucket.logs.id
  object_lock_years = 3

  expiry_rules = [
    {
      id              = "expire-anchors-after-retention"
      prefix          = "anchors/"
      expiration_days = 1100
      noncurrent_days = 1100
    },
  ]
}
