locals {
  name = "sesshu-${var.environment}"

  # Subnets: /20 per AZ for public (load balancers, NAT), /18 per AZ for the application
  # (EKS nodes and pods: the VPC CNI gives every pod a VPC address), /22 per AZ for data.
  public_subnet_cidrs = [for i in range(3) : cidrsubnet(var.vpc_cidr, 4, i)]
  app_subnet_cidrs    = [for i in range(3) : cidrsubnet(var.vpc_cidr, 2, i + 1)]
  data_subnet_cidrs   = [for i in range(3) : cidrsubnet(var.vpc_cidr, 6, i + 12)]

  # Secrets Manager names read by the External Secrets operator (k8s/base/external-secrets.yaml).
  secret_prefix = "sesshu/${var.environment}"

  irsa_subject_prefix = "system:serviceaccount:${var.k8s_namespace}"

  log_retention_days_audit = 1096 # three years
  log_retention_days_ops   = 365
}
