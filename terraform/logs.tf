# CloudWatch log groups, all encrypted with the logs key.
# Audit and access logs (application audit stream, HTTP access log, WAF, load balancer-facing
# flow logs, EKS API audit) are kept three years; purely operational logs one year.

resource "aws_cloudwatch_log_group" "audit" {
  name              = "/sesshu/${var.environment}/audit"
  retention_in_days = local.log_retention_days_audit
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/sesshu/${var.environment}/access"
  retention_in_days = local.log_retention_days_audit
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_cloudwatch_log_group" "application" {
  name              = "/sesshu/${var.environment}/application"
  retention_in_days = local.log_retention_days_ops
  kms_key_id        = aws_kms_key.logs.arn
}

# The WAF requires its log group name to start with "aws-waf-logs-".
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${local.name}"
  retention_in_days = local.log_retention_days_audit
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_cloudwatch_log_group" "vpc_flow" {
  name              = "/sesshu/${var.environment}/vpc-flow"
  retention_in_days = local.log_retention_days_audit
  kms_key_id        = aws_kms_key.logs.arn
}

# EKS control plane logs (API server, audit, authenticator...). The name is fixed by EKS.
resource "aws_cloudwatch_log_group" "eks" {
  name              = "/aws/eks/${local.name}/cluster"
  retention_in_days = local.log_retention_days_audit
  kms_key_id        = aws_kms_key.logs.arn
}

# RDS exports; the names are fixed by RDS.
resource "aws_cloudwatch_log_group" "rds" {
  for_each = toset(["postgresql", "upgrade", "iam-db-auth-error"])

  name              = "/aws/rds/instance/${local.name}/${each.key}"
  retention_in_days = each.key == "postgresql" ? local.log_retention_days_audit : local.log_retention_days_ops
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_cloudwatch_log_group" "redis" {
  for_each = toset(["slow-log", "engine-log"])

  name              = "/sesshu/${var.environment}/redis/${each.key}"
  retention_in_days = local.log_retention_days_ops
  kms_key_id        = aws_kms_key.logs.arn
}
