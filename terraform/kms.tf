# Customer-managed KMS keys, one per purpose, all with yearly automatic rotation.
# Key policies give the account root (so IAM policies can grant use), the administrator roles
# (management only: they cannot use the keys to decrypt), and where needed an AWS service.

locals {
  kms_root_statement = {
    Sid       = "AccountRootManagesKeyThroughIAM"
    Effect    = "Allow"
    Principal = { AWS = "arn:aws:iam::${var.aws_account_id}:root" }
    Action    = "kms:*"
    Resource  = "*"
  }

  kms_admin_statement = {
    Sid       = "KeyAdministration"
    Effect    = "Allow"
    Principal = { AWS = var.admin_role_arns }
    Action = [
      "kms:Describe*",
      "kms:Get*",
      "kms:List*",
      "kms:EnableKey*",
      "kms:DisableKey*",
      "kms:RotateKeyOnDemand",
      "kms:Put*",
      "kms:Update*",
      "kms:Revoke*",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:ScheduleKeyDeletion",
      "kms:CancelKeyDeletion",
    ]
    Resource = "*"
  }

  # Use a key only through a service in this account and region.
  kms_via_service = {
    rds         = "rds.${var.aws_region}.amazonaws.com"
    s3          = "s3.${var.aws_region}.amazonaws.com"
    elasticache = "elasticache.${var.aws_region}.amazonaws.com"
    secrets     = "secretsmanager.${var.aws_region}.amazonaws.com"
    ec2         = "ec2.${var.aws_region}.amazonaws.com"
    ecr         = "ecr.${var.aws_region}.amazonaws.com"
  }
}

# Envelope key for the municipalities' data keys (SESSHU_KEY_PROVIDER=aws-kms). The
# application calls GenerateDataKey/Decrypt directly; no AWS service uses this key.
resource "aws_kms_key" "tenant" {
  description             = "${local.name}: envelope key for per-municipality data keys"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.kms_root_statement, local.kms_admin_statement]
  })
}

resource "aws_kms_alias" "tenant" {
  name          = "alias/${local.name}-tenant-keys"
  target_key_id = aws_kms_key.tenant.key_id
}

# The node groups' Auto Scaling groups launch encrypted volumes through this role, which the
# data key's policy names; KMS refuses a policy naming a role that does not exist yet.
resource "aws_iam_service_linked_role" "autoscaling" {
  count            = var.create_autoscaling_service_linked_role ? 1 : 0
  aws_service_name = "autoscaling.amazonaws.com"
}

# Data at rest: RDS storage, Performance Insights, snapshots, ElastiCache, EBS of the nodes.
resource "aws_kms_key" "data" {
  description             = "${local.name}: RDS, Performance Insights, ElastiCache and EBS encryption"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.kms_root_statement,
      local.kms_admin_statement,
      {
        # EC2 Auto Scaling launches the node groups' encrypted volumes with this key.
        Sid    = "AutoScalingUsesKeyForNodeVolumes"
        Effect = "Allow"
        Principal = {
          AWS = "arn:aws:iam::${var.aws_account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
        }
        Action   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource = "*"
      },
      {
        Sid    = "AutoScalingCreatesGrantsForNodeVolumes"
        Effect = "Allow"
        Principal = {
          AWS = "arn:aws:iam::${var.aws_account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
        }
        Action    = "kms:CreateGrant"
        Resource  = "*"
        Condition = { Bool = { "kms:GrantIsForAWSResource" = "true" } }
      },
    ]
  })

  depends_on = [aws_iam_service_linked_role.autoscaling]
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

# S3: uploads/exports, audit anchors, Terraform-independent objects.
resource "aws_kms_key" "storage" {
  description             = "${local.name}: S3 buckets (files, audit anchors)"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.kms_root_statement, local.kms_admin_statement]
  })
}

resource "aws_kms_alias" "storage" {
  name          = "alias/${local.name}-storage"
  target_key_id = aws_kms_key.storage.key_id
}

# CloudWatch Logs and CloudTrail: the log groups of this configuration (audit and access logs
# included) and the API audit trail.
resource "aws_kms_key" "logs" {
  description             = "${local.name}: CloudWatch Logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.kms_root_statement,
      local.kms_admin_statement,
      {
        Sid       = "CloudWatchLogsUsesKey"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.aws_region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:aws:logs:${var.aws_region}:${var.aws_account_id}:log-group:*"
          }
        }
      },
      {
        Sid       = "CloudTrailEncryptsLogs"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = ["kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceArn" = "arn:aws:cloudtrail:${var.aws_region}:${var.aws_account_id}:trail/${local.name}" }
          StringLike   = { "kms:EncryptionContext:aws:cloudtrail:arn" = "arn:aws:cloudtrail:*:${var.aws_account_id}:trail/*" }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${local.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

# Secrets Manager secrets and the Kubernetes secrets envelope of EKS.
resource "aws_kms_key" "secrets" {
  description             = "${local.name}: Secrets Manager and EKS secrets encryption"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.kms_root_statement, local.kms_admin_statement]
  })
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/${local.name}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}
