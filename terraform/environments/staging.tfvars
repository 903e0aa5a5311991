# Staging: its own AWS account, smaller sizes, same shape as production.
environment     = "staging"
aws_account_id  = "111122223333"
base_domain     = "staging.sesshu.example.jp"
route53_zone_id = "Z0000000STAGING"
admin_role_arns = ["arn:aws:iam::111122223333:role/sesshu-platform-admin"]
vpc_cidr        = "10.20.0.0/16"

db_instance_class            = "db.r7g.large"
db_allocated_storage_gib     = 50
db_max_allocated_storage_gib = 200
redis_node_type              = "cache.t4g.medium"

node_groups = {
  system = {
    instance_types = ["m7i.large"]
    min_size       = 3
    desired_size   = 3
    max_size       = 3
    disk_size_gib  = 50
    labels         = { "sesshu.jp/pool" = "system" }
    taints         = [{ key = "CriticalAddonsOnly", value = "true", effect = "NO_SCHEDULE" }]
  }
  app = {
    instance_types = ["m7i.large"]
    min_size       = 3
    desired_size   = 3
    max_size       = 6
    disk_size_gib  = 50
    labels         = { "sesshu.jp/pool" = "app" }
    taints         = []
  }
}
