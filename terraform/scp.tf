# Service control policy for the AWS Organizations management account to attach to Sesshu's
# accounts: every request outside ap-northeast-1 is denied, except for the global services
# whose API endpoints live in us-east-1 whatever region is configured. It is rendered here and
# output as JSON; this configuration deliberately has no organisations permissions to attach it:
#
#   aws organizations create-policy --type SERVICE_CONTROL_POLICY --name sesshu-tokyo-only \
#     --content "$(terraform output -raw region_lock_scp_json)" --description "..."
#   aws organizations attach-policy --policy-id p-... --target-id <account id>

locals {
  # Global services (no regional data plane for customer data).
  scp_global_actions = [
    "account:*",
    "aws-portal:*",
    "billing:*",
    "budgets:*",
    "ce:*",
    "cur:*",
    "freetier:*",
    "health:*",
    "iam:*",
    "invoicing:*",
    "organizations:*",
    "payments:*",
    "pricing:*",
    "route53:*",
    "route53domains:*",
    "sts:*",
    "support:*",
    "supportplans:*",
    "tax:*",
    "trustedadvisor:*",
    "ec2:DescribeRegions",
    "s3:GetAccountPublicAccessBlock",
    "s3:PutAccountPublicAccessBlock",
    "s3:ListAllMyBuckets",
  ]
}

data "aws_iam_policy_document" "region_lock_scp" {
  statement {
    sid         = "DenyOutsideTokyo"
    effect      = "Deny"
    not_actions = local.scp_global_actions
    resources   = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "aws:RequestedRegion"
      values   = [var.aws_region]
    }

    dynamic "condition" {
      for_each = length(var.scp_exempt_role_arns) > 0 ? [1] : []
      content {
        test     = "ArnNotLike"
        variable = "aws:PrincipalARN"
        values   = var.scp_exempt_role_arns
      }
    }
  }

  # Keep the guard rails of this configuration from being switched off.
  statement {
    sid    = "DenyDisablingGuardRails"
    effect = "Deny"
    actions = [
      "s3:PutBucketObjectLockConfiguration",
      "kms:DisableKeyRotation",
      "wafv2:DisassociateWebACL",
      "ec2:DeleteFlowLogs",
      "logs:DeleteLogGroup",
    ]
    resources = ["*"]

    dynamic "condition" {
      for_each = length(var.scp_exempt_role_arns) > 0 ? [1] : []
      content {
        test     = "ArnNotLike"
        variable = "aws:PrincipalARN"
        values   = var.scp_exempt_role_arns
      }
    }
  }
}
