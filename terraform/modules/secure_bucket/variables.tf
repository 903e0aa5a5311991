variable "name" {
  description = "Bucket name."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for SSE-KMS."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving the server access logs (under s3/<name>/)."
  type        = string
}

variable "object_lock_years" {
  description = "Default Object Lock retention in compliance mode, in years (0: no Object Lock)."
  type        = number
  default     = 0
}

variable "expiry_rules" {
  description = "Lifecycle rules expiring objects under a prefix."
  type = list(object({
    id              = string
    prefix          = string
    expiration_days = number
    noncurrent_days = number
  }))
  default = []
}

variable "extra_policy_json" {
  description = "Additional bucket policy statements (JSON policy document)."
  type        = string
  default     = null
}
