variable "aws_region" {
  description = "AWS region. Residents' data must stay in Japan: only ap-northeast-1 is accepted."
  type        = string
  default     = "ap-northeast-1"

  validation {
    condition     = var.aws_region == "ap-northeast-1"
    error_message = "Sesshu runs only in ap-northeast-1 (Tokyo); every other region is refused."
  }
}

variable "aws_account_id" {
  description = "The only AWS account this configuration may touch (provider allowed_account_ids)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be a 12-digit AWS account id."
  }
}

variable "environment" {
  description = "Deployment environment."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "base_domain" {
  description = "Base domain: municipalities are <code>.<base_domain>, vendor operators use platform.<base_domain>."
  type        = string
}

variable "route53_zone_id" {
  description = "Public Route 53 hosted zone of base_domain (used for certificate validation and SES)."
  type        = string
}

variable "admin_role_arns" {
  description = "IAM roles of the platform engineers: cluster admins and KMS key administrators."
  type        = list(string)

  validation {
    condition     = length(var.admin_role_arns) > 0
    error_message = "At least one administrator role is required."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC (a /16 split into public, application and data subnets)."
  type        = string
  default     = "10.10.0.0/16"
}

variable "availability_zones" {
  description = "The three Tokyo availability zones used."
  type        = list(string)
  default     = ["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]

  validation {
    condition     = length(var.availability_zones) == 3 && alltrue([for az in var.availability_zones : startswith(az, "ap-northeast-1")])
    error_message = "Exactly three availability zones of ap-northeast-1 are required."
  }
}

variable "eks_version" {
  description = "Kubernetes version of the EKS control plane."
  type        = string
  default     = "1.33"
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to reach the EKS API over the internet. Empty keeps the endpoint private (reach it from inside the VPC)."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "EKS managed node groups. Each spans the three application subnets."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_size_gib  = number
    labels         = map(string)
    taints = list(object({
      key    = string
      value  = string
      effect = string
    }))
  }))
  default = {
    system = {
      instance_types = ["m7i.large"]
      min_size       = 3
      desired_size   = 3
      max_size       = 6
      disk_size_gib  = 50
      labels         = { "sesshu.jp/pool" = "system" }
      taints = [{
        key    = "CriticalAddonsOnly"
        value  = "true"
        effect = "NO_SCHEDULE"
      }]
    }
    app = {
      instance_types = ["m7i.xlarge", "m6i.xlarge"]
      min_size       = 3
      desired_size   = 3
      max_size       = 30
      disk_size_gib  = 80
      labels         = { "sesshu.jp/pool" = "app" }
      taints         = []
    }
  }
}

variable "k8s_log_shipper_namespace" {
  description = "Kubernetes namespace of the log shipper (must match k8s/log-shipper)."
  type        = string
  default     = "sesshu-logs"
}

variable "k8s_namespace" {
  description = "Kubernetes namespace of the application (must match k8s/base)."
  type        = string
  default     = "sesshu"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.r7g.xlarge"
}

variable "db_allocated_storage_gib" {
  description = "Initial RDS storage (gp3)."
  type        = number
  default     = 200
}

variable "db_max_allocated_storage_gib" {
  description = "Upper bound for RDS storage autoscaling."
  type        = number
  default     = 2000
}

variable "db_engine_version" {
  description = "PostgreSQL major version (16 or later)."
  type        = string
  default     = "16"

  validation {
    condition     = tonumber(split(".", var.db_engine_version)[0]) >= 16
    error_message = "PostgreSQL 16 or later is required."
  }
}

variable "db_backup_retention_days" {
  description = "Automated backup retention (point-in-time recovery window), in days."
  type        = number
  default     = 35

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "Backup retention must be between 7 and 35 days."
  }
}

variable "db_max_locks_per_transaction" {
  description = "max_locks_per_transaction: migrating or dumping hundreds of tenant schemas takes one lock per table per schema."
  type        = number
  default     = 1024
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "uploads_expiry_days" {
  description = "Days after which objects under uploads/ (registry import files) are deleted."
  type        = number
  default     = 30
}

variable "exports_expiry_days" {
  description = "Days after which objects under exports/ (registry error lists, activation codes) are deleted."
  type        = number
  default     = 14

  # The console offers a registry import's error list for 14 days (booking.services.
  # registry_import.ERROR_FILE_DAYS): the object must not disappear before that.
  validation {
    condition     = var.exports_expiry_days >= 14
    error_message = "exports_expiry_days must be at least 14: the console offers error files for 14 days."
  }
}

variable "login_rate_limit" {
  description = "WAF: requests per 5 minutes from one IP to a login path before it is blocked."
  type        = number
  default     = 100

  validation {
    condition     = var.login_rate_limit >= 10
    error_message = "WAF rate-based rules need a limit of at least 10."
  }
}

variable "ingress_dns_enabled" {
  description = "Create the alias records once the Ingress load balancer exists."
  type        = bool
  default     = false
}

variable "scp_exempt_role_arns" {
  description = "Roles (e.g. an organisation break-glass role) that the region-lock SCP does not apply to."
  type        = list(string)
  default     = []
}

variable "create_autoscaling_service_linked_role" {
  description = "Create the EC2 Auto Scaling service-linked role (named in the data key's policy). Set false if the account already has it."
  type        = bool
  default     = true
}
