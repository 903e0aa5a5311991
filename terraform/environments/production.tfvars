# Production: its own AWS account.
environment     = "production"
aws_account_id  = "444455556666"
base_domain     = "sesshu.example.jp"
route53_zone_id = "Z0000000PRODUCTION"
admin_role_arns = ["arn:aws:iam::444455556666:role/sesshu-platform-admin"]
vpc_cidr        = "10.10.0.0/16"
