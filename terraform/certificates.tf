# TLS certificate of the load balancer: the base domain, every municipality (*.base) and the
# vendor console (platform.base, covered by the wildcard). ACM in Tokyo, DNS-validated.

resource "aws_acm_certificate" "main" {
  domain_name               = var.base_domain
  subject_alternative_names = ["*.${var.base_domain}"]
  validation_method         = "DNS"
  key_algorithm             = "RSA_2048"

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = {
    for o in aws_acm_certificate.main.domain_validation_options : o.domain_name => o
  }

  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  ttl             = 300
  records         = [each.value.resource_record_value]
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "main" {
  certificate_arn         = aws_acm_certificate.main.arn
  validation_record_fqdns = [for r in aws_route53_record.certificate_validation : r.fqdn]
}

# DNS for the load balancer. The ALB is created by the AWS Load Balancer Controller when the
# Ingresses are applied, so these records are added by a second apply with
# ingress_dns_enabled = true (docs/operations.md, "First deployment").
data "aws_lb" "ingress" {
  count = var.ingress_dns_enabled ? 1 : 0

  tags = {
    "elbv2.k8s.aws/cluster" = aws_eks_cluster.main.name
    "ingress.k8s.aws/stack" = "sesshu"
  }
}

resource "aws_route53_record" "ingress" {
  for_each = var.ingress_dns_enabled ? toset(["*.${var.base_domain}", "platform.${var.base_domain}"]) : toset([])

  zone_id = var.route53_zone_id
  name    = each.key
  type    = "A"

  alias {
    name                   = data.aws_lb.ingress[0].dns_name
    zone_id                = data.aws_lb.ingress[0].zone_id
    evaluate_target_health = true
  }
}
