# Secrets Manager entries read by the External Secrets operator (k8s/base/external-secrets.yaml).
# Terraform creates the containers; values that Terraform does not need are put there by an
# operator (docs/operations.md, "First deployment") so they never enter the Terraform state.
#
#   sesshu/<env>/django          {"secret_key": ...}
#   sesshu/<env>/database-app    {"url": "postgresql://sesshu_app:...@host:5432/sesshu?..."}
#   sesshu/<env>/sentry          {"dsn": ...}   (Sentry scrubbed, or self-hosted in Tokyo)
#   sesshu/<env>/infrastructure  endpoints and the Redis AUTH token (written by Terraform)
# The database owner credentials are the RDS-managed master secret (rotated by RDS).

locals {
  operator_secrets = {
    django       = "Django SECRET_KEY"
    database-app = "DATABASE_URL of the application login role"
    sentry       = "Sentry DSN"
  }
}

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:rotated by the documented procedure (docs/operations.md); no Lambda rotation for these values
  for_each = local.operator_secrets

  name                    = "${local.secret_prefix}/${each.key}"
  description             = "Sesshu ${var.environment}: ${each.value}"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "redis" {
  #checkov:skip=CKV2_AWS_57:the Redis AUTH token is rotated by Terraform (auth_token_update_strategy ROTATE), see docs/operations.md
  name                    = "${local.secret_prefix}/infrastructure"
  description             = "Sesshu ${var.environment}: database and Redis endpoints, Redis AUTH token"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "redis" {
  secret_id = aws_secretsmanager_secret.redis.id
  secret_string = jsonencode({
    db_host          = aws_db_instance.main.address
    db_port          = tostring(aws_db_instance.main.port)
    db_name          = "sesshu"
    redis_host       = aws_elasticache_replication_group.main.primary_endpoint_address
    redis_port       = tostring(aws_elasticache_replication_group.main.port)
    redis_auth_token = random_password.redis_auth.result
  })
}
