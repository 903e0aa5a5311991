output "region_lock_scp_json" {
  description = "Service control policy denying every region but ap-northeast-1 (for the organisation owner to attach)."
  value       = data.aws_iam_policy_document.region_lock_scp.json
}

output "eks_cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = aws_eks_cluster.main.name
}

output "ecr_repository_url" {
  description = "Image repository (k8s overlays: images[].newName)."
  value       = aws_ecr_repository.app.repository_url
}

# Everything the Kubernetes overlay needs (k8s/overlays/<env>/aws-values.env).
output "k8s_overlay_values" {
  description = "Values for k8s/overlays/<env>/aws-values.env."
  value = {
    AWS_ACCOUNT_ID         = var.aws_account_id
    WEB_ROLE_ARN           = aws_iam_role.irsa["web"].arn
    WORKER_ROLE_ARN        = aws_iam_role.irsa["worker"].arn
    MIGRATE_ROLE_ARN       = aws_iam_role.irsa["migrate"].arn
    SECRETS_ROLE_ARN       = aws_iam_role.irsa["secrets"].arn
    LOG_SHIPPER_ROLE_ARN   = aws_iam_role.irsa["log_shipper"].arn
    CERTIFICATE_ARN        = aws_acm_certificate.main.arn
    WAF_ACL_ARN            = aws_wafv2_web_acl.main.arn
    LOGS_BUCKET            = aws_s3_bucket.logs.id
    FILES_BUCKET           = module.files_bucket.id
    AUDIT_ANCHOR_BUCKET    = module.audit_anchor_bucket.id
    TENANT_KMS_KEY_ARN     = aws_kms_key.tenant.arn
    STORAGE_KMS_KEY_ARN    = aws_kms_key.storage.arn
    RDS_MASTER_SECRET_ARN  = aws_db_instance.main.master_user_secret[0].secret_arn
    PUBLIC_SUBNET_CIDRS    = join(",", local.public_subnet_cidrs)
    DATA_SUBNET_CIDRS      = join(",", local.data_subnet_cidrs)
    VPC_CIDR               = var.vpc_cidr
    LB_CONTROLLER_ROLE_ARN = aws_iam_role.irsa["lb_controller"].arn
    CLOUDWATCH_ROLE_ARN    = aws_iam_role.irsa["cloudwatch_agent"].arn
    SES_CONFIGURATION_SET  = aws_sesv2_configuration_set.main.configuration_set_name
    AUDIT_LOG_GROUP        = aws_cloudwatch_log_group.audit.name
    ACCESS_LOG_GROUP       = aws_cloudwatch_log_group.access.name
    APPLICATION_LOG_GROUP  = aws_cloudwatch_log_group.application.name
    INFRASTRUCTURE_SECRET  = aws_secretsmanager_secret.redis.name
  }
}
