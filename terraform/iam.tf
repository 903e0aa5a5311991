# IAM roles for service accounts (IRSA). Each Kubernetes service account gets its own role,
# trusted only for that namespace/name through the cluster's OIDC provider.
#
#   web      reads personal data:   KMS Decrypt (and GenerateDataKey for provisioning in the
#                                   control plane) on the tenant key, always with the tenant
#                                   encryption context; S3 uploads/ write + delete (registry
#                                   files staff upload), exports/ read + delete; no SES, SNS,
#                                   anchors
#   worker   background work:       KMS Decrypt + GenerateDataKey on the tenant key, S3 uploads/
#                                   read/write/delete, exports/ write, audit anchors
#                                   (write-once), SES, SNS SMS
#   migrate  migrate_schemas:       KMS Decrypt + GenerateDataKey on the tenant key (data migrations)
#   secrets  External Secrets:      read sesshu/<env>/* secrets and the RDS-managed secret
#   beat     has no AWS role at all (it only talks to Redis).
#   log_shipper  Fluent Bit (k8s/log-shipper): CreateLogStream, PutLogEvents and
#                DescribeLogStreams on the audit, access and application log groups only

locals {
  irsa = {
    web              = { namespace = var.k8s_namespace, service_account = "sesshu-web" }
    worker           = { namespace = var.k8s_namespace, service_account = "sesshu-worker" }
    migrate          = { namespace = var.k8s_namespace, service_account = "sesshu-migrate" }
    secrets          = { namespace = var.k8s_namespace, service_account = "sesshu-secrets" }
    log_shipper      = { namespace = var.k8s_log_shipper_namespace, service_account = "sesshu-log-shipper" }
    vpc_cni          = { namespace = "kube-system", service_account = "aws-node" }
    lb_controller    = { namespace = "kube-system", service_account = "aws-load-balancer-controller" }
    cloudwatch_agent = { namespace = "amazon-cloudwatch", service_account = "cloudwatch-agent" }
  }
}

data "aws_iam_policy_document" "irsa_trust" {
  for_each = local.irsa

  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_host}:sub"
      values   = ["system:serviceaccount:${each.value.namespace}:${each.value.service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = local.irsa

  name                 = "${local.name}-${replace(each.key, "_", "-")}"
  assume_role_policy   = data.aws_iam_policy_document.irsa_trust[each.key].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "vpc_cni" {
  role       = aws_iam_role.irsa["vpc_cni"].name
  policy_arn = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
}

resource "aws_iam_role_policy_attachment" "cloudwatch_agent" {
  role       = aws_iam_role.irsa["cloudwatch_agent"].name
  policy_arn = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
}

# --- Application: web ----------------------------------------------------------------------

data "aws_iam_policy_document" "web" {
  # Decrypt: every page that shows a resident's data. GenerateDataKey: the control plane
  # provisions a municipality (and its data key) in the request (controlplane.views ->
  # tenants.services.municipality_provision); drop it once provisioning runs as a task.
  statement {
    sid       = "TenantKeysWithTenantContext"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.tenant.arn]

    # Only with the tenant binding the application always sends (tenants.keys: the
    # encryption context {"sesshu:tenant": <municipality code>}).
    condition {
      test     = "Null"
      variable = "kms:EncryptionContext:sesshu:tenant"
      values   = ["false"]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "kms:EncryptionContextKeys"
      values   = ["sesshu:tenant"]
    }
  }

  statement {
    sid       = "DescribeTenantKey"
    actions   = ["kms:DescribeKey"]
    resources = [aws_kms_key.tenant.arn]
  }

  # Object keys are <area>/<tenant prefix>/... (tenants.storage). Staff upload registry
  # files and may cancel an import (its file is deleted); large files go up in parts.
  statement {
    sid       = "UploadRegistryFiles"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"]
    resources = ["${module.files_bucket.arn}/uploads/*"]
  }

  # Staff download generated files: the error list, and the activation codes, which are
  # deleted as they are read (downloadable once).
  statement {
    sid       = "DownloadExports"
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = ["${module.files_bucket.arn}/exports/*"]
  }

  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [module.files_bucket.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["uploads/*", "exports/*"]
    }
  }

  statement {
    sid       = "StorageKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.storage.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_service.s3]
    }
  }
}

resource "aws_iam_role_policy" "web" {
  name   = "sesshu-web"
  role   = aws_iam_role.irsa["web"].id
  policy = data.aws_iam_policy_document.web.json
}

# --- Application: worker -------------------------------------------------------------------

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "TenantKeysWithTenantContext"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.tenant.arn]

    # Only with the tenant binding the application always sends (tenants.keys: the
    # encryption context {"sesshu:tenant": <municipality code>}).
    condition {
      test     = "Null"
      variable = "kms:EncryptionContext:sesshu:tenant"
      values   = ["false"]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "kms:EncryptionContextKeys"
      values   = ["sesshu:tenant"]
    }
  }

  statement {
    sid       = "DescribeTenantKey"
    actions   = ["kms:DescribeKey"]
    resources = [aws_kms_key.tenant.arn]
  }

  # Registry imports read the uploaded file and delete it when done; `manage.py
  # vouchers_import`, run in a worker pod, uploads the file itself.
  statement {
    sid       = "ProcessUploads"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"]
    resources = ["${module.files_bucket.arn}/uploads/*"]
  }

  # Generated files (error lists, activation codes): written here, downloaded through web.
  statement {
    sid       = "WriteExports"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${module.files_bucket.arn}/exports/*"]
  }

  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [module.files_bucket.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["uploads/*", "exports/*"]
    }
  }

  # Audit anchoring: write new anchors, read them back. No delete, no retention change
  # (Object Lock in compliance mode would refuse both anyway).
  statement {
    sid       = "AuditAnchorsWriteOnce"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:GetObjectRetention"]
    resources = ["${module.audit_anchor_bucket.arn}/anchors/*"]
  }

  # audit_verify finds a chain's latest anchor by listing anchors/<chain>/ (newest first).
  statement {
    sid       = "ListAuditAnchors"
    actions   = ["s3:ListBucket"]
    resources = [module.audit_anchor_bucket.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["anchors/*"]
    }
  }

  statement {
    sid       = "StorageKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.storage.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_service.s3]
    }
  }

  statement {
    sid       = "SendEmailFromOwnDomain"
    actions   = ["ses:SendEmail", "ses:SendRawEmail"]
    resources = [aws_sesv2_email_identity.main.arn, aws_sesv2_configuration_set.main.arn]
  }

  # Direct SMS to a phone number has no resource ARN, so Publish needs "*"; the explicit deny
  # below keeps it from publishing to any topic or endpoint.
  #checkov:skip=CKV_AWS_356:SNS direct SMS publishing has no resource ARN; topic/endpoint publishing is denied below
  #checkov:skip=CKV_AWS_111:SNS direct SMS publishing has no resource ARN; topic/endpoint publishing is denied below
  statement {
    sid       = "SendSms"
    actions   = ["sns:Publish"]
    resources = ["*"]
  }

  statement {
    sid       = "NoTopicOrEndpointPublishing"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = ["arn:aws:sns:*:*:*"]
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "sesshu-worker"
  role   = aws_iam_role.irsa["worker"].id
  policy = data.aws_iam_policy_document.worker.json
}

# --- Application: migrations ---------------------------------------------------------------

data "aws_iam_policy_document" "migrate" {
  statement {
    sid       = "TenantKeysWithTenantContext"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.tenant.arn]

    # Only with the tenant binding the application always sends (tenants.keys: the
    # encryption context {"sesshu:tenant": <municipality code>}).
    condition {
      test     = "Null"
      variable = "kms:EncryptionContext:sesshu:tenant"
      values   = ["false"]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "kms:EncryptionContextKeys"
      values   = ["sesshu:tenant"]
    }
  }

  statement {
    sid       = "DescribeTenantKey"
    actions   = ["kms:DescribeKey"]
    resources = [aws_kms_key.tenant.arn]
  }
}

resource "aws_iam_role_policy" "migrate" {
  name   = "sesshu-migrate"
  role   = aws_iam_role.irsa["migrate"].id
  policy = data.aws_iam_policy_document.migrate.json
}

# --- External Secrets operator (namespaced SecretStore) ------------------------------------

data "aws_iam_policy_document" "secrets" {
  statement {
    sid     = "ReadApplicationSecrets"
    actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"]
    resources = concat(
      [for s in aws_secretsmanager_secret.app : s.arn],
      [aws_secretsmanager_secret.redis.arn, aws_db_instance.main.master_user_secret[0].secret_arn],
    )
  }

  statement {
    sid       = "SecretsKeyThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.secrets.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_service.secrets]
    }
  }
}

resource "aws_iam_role_policy" "secrets" {
  name   = "sesshu-external-secrets"
  role   = aws_iam_role.irsa["secrets"].id
  policy = data.aws_iam_policy_document.secrets.json
}

# --- Log shipper (Fluent Bit, k8s/log-shipper) ---------------------------------------------

# Streams are created in, and events written to, the three application log groups of logs.tf;
# never a group (auto_create_group false), never another group. CreateLogStream and
# DescribeLogStreams act on the group's ARN, PutLogEvents on its streams'. No KMS permission:
# with a KMS-encrypted group, CloudWatch Logs itself uses the logs key (its key policy, kms.tf),
# not the caller.
data "aws_iam_policy_document" "log_shipper" {
  statement {
    sid     = "StreamsOfTheApplicationLogGroups"
    actions = ["logs:CreateLogStream", "logs:DescribeLogStreams"]
    resources = [
      aws_cloudwatch_log_group.audit.arn,
      aws_cloudwatch_log_group.access.arn,
      aws_cloudwatch_log_group.application.arn,
    ]
  }

  statement {
    sid     = "EventsToTheApplicationLogGroups"
    actions = ["logs:PutLogEvents"]
    resources = [
      "${aws_cloudwatch_log_group.audit.arn}:log-stream:*",
      "${aws_cloudwatch_log_group.access.arn}:log-stream:*",
      "${aws_cloudwatch_log_group.application.arn}:log-stream:*",
    ]
  }
}

resource "aws_iam_role_policy" "log_shipper" {
  name   = "sesshu-log-shipper"
  role   = aws_iam_role.irsa["log_shipper"].id
  policy = data.aws_iam_policy_document.log_shipper.json
}
