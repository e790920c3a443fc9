# The service (IAC-3, IAC-4, IAC-5): ECS cluster with Container Insights, a Fargate service
# behind an ALB with a production and a test listener and two target groups (blue, green),
# target-tracking auto scaling, least-privilege IAM roles and a 90-day log group (DR-1).
#
# deployops owns the moving parts after the first apply: it registers task-definition revisions,
# changes the desired count and points the listeners at blue or green (DEP-1..DEP-4). The
# `ignore_changes` blocks below keep a later `terraform apply` from undoing its work.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_elb_service_account" "current" {}

locals {
  # One ECS service per colour, or one service that ECS itself deploys blue/green.
  service_keys = var.deployment_mode == "services" ? toset(["blue", "green"]) : toset(["native"])

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # IAM needs the bare secret ARN; ECS also accepts `<arn>:<json-key>:<stage>:<version>`.
  secret_arns = distinct([for arn in values(var.container_secrets) : join(":", slice(split(":", arn), 0, 7))])

  container_definition = {
    name      = var.container_name
    image     = var.container_image
    essential = true

    portMappings = [{
      containerPort = var.container_port
      protocol      = "tcp"
    }]

    environment = [for k in sort(keys(var.container_environment)) : { name = k, value = var.container_environment[k] }]
    secrets     = [for k in sort(keys(var.container_secrets)) : { name = k, valueFrom = var.container_secrets[k] }]

    # Read-only root file system; /tmp is a task-local scratch volume.
    readonlyRootFilesystem = true
    mountPoints = [{
      sourceVolume  = "tmp"
      containerPath = "/tmp"
      readOnly      = false
    }]

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.app.name
        awslogs-region        = local.region
        awslogs-stream-prefix = var.container_name
      }
    }
  }
}

################################################################################
# Logs (DR-1: CloudWatch Logs, 90 days)
################################################################################

data "aws_iam_policy_document" "logs_kms" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy; Resource "*" means the key itself, and key administration stays with the owning account.
  #checkov:skip=CKV_AWS_111:This is a KMS key policy; Resource "*" means the key itself, and key administration stays with the owning account.
  #checkov:skip=CKV_AWS_356:This is a KMS key policy; Resource "*" means the key itself.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsUse"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "logs" {
  description             = "${var.name}: application and WAF logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.logs_kms.json
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${var.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

resource "aws_cloudwatch_log_group" "app" {
  #checkov:skip=CKV_AWS_338:Retention follows the backup policy (DR-1: logs 90 days), set by log_retention_days.
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

################################################################################
# Cluster (IAC-3)
################################################################################

resource "aws_ecs_cluster" "this" {
  name = var.name

  # Container Insights: per-task CPU and memory at 1-minute resolution (IAC-3, IAC-5).
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

################################################################################
# IAM: execution role (pull image, write logs, read the listed secrets) and task role (the app)
################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  description        = "ECS agent for ${var.name}: pulls the image, writes logs, injects secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.app.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []

    content {
      sid = "PullImage"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = var.ecr_repository_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []

    content {
      # GetAuthorizationToken has no resource-level permissions; "*" is the only valid value.
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = length(local.secret_arns) > 0 ? [1] : []

    content {
      sid       = "ReadListedSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secret_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "DecryptListedSecrets"
      actions   = ["kms:Decrypt"]
      resources = var.secrets_kms_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "ecs-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-ecs-task"
  description        = "The application in ${var.name}; no permissions unless task_role_policy_arns grants them"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "task" {
  for_each = toset(var.task_role_policy_arns)

  role       = aws_iam_role.task.name
  policy_arn = each.value
}

################################################################################
# Task definition (the first revision; deployops registers the next ones)
################################################################################

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([local.container_definition])
}

################################################################################
# Load balancer: production listener, test listener, blue and green target groups
################################################################################

resource "aws_s3_bucket" "alb_logs" {
  #checkov:skip=CKV_AWS_18:This bucket receives the load balancer's access logs; logging its own accesses to itself would loop.
  #checkov:skip=CKV_AWS_144:Access logs are diagnostics kept 90 days (DR-1); they are not replicated to the recovery region.
  #checkov:skip=CKV_AWS_145:ALB access logs can only be delivered to buckets encrypted with SSE-S3, not SSE-KMS (Elastic Load Balancing user guide, "Enable access logs").
  #checkov:skip=CKV2_AWS_62:Nothing consumes events from the access-log bucket.
  bucket = "${var.name}-alb-logs-${local.account_id}-${local.region}"
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "alb_logs" {
  # Regions that existed before August 2022 deliver logs as the regional ELB account; newer
  # regions use the log-delivery service principal. Granting both keeps the module portable.
  statement {
    sid       = "ElbAccountDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.alb_logs.arn}/alb/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }

  statement {
    sid       = "LogDeliveryService"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.alb_logs.arn}/alb/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.alb_logs.arn, "${aws_s3_bucket.alb_logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  policy = data.aws_iam_policy_document.alb_logs.json

  depends_on = [aws_s3_bucket_public_access_block.alb_logs]
}

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_76:Log4j is covered by AWSManagedRulesKnownBadInputsRuleSet; the check also demands AWSManagedRulesAnonymousIpList, whose hosting-provider list would block legitimate clients such as CI smoke tests from cloud runners.
  name               = var.name
  internal           = false
  load_balancer_type = "application"
  security_groups    = [var.alb_security_group_id]
  subnets            = var.public_subnet_ids

  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection

  access_logs {
    bucket  = aws_s3_bucket.alb_logs.id
    prefix  = "alb"
    enabled = true
  }

  # The load balancer checks that it may write to the bucket when logging is switched on.
  depends_on = [aws_s3_bucket_policy.alb_logs]
}

resource "aws_lb_target_group" "this" {
  # TLS ends at the load balancer; targets are reached over HTTP inside the private subnets,
  # and only the load balancer's security group may connect.
  for_each = toset(["blue", "green"])

  name                 = "${var.name}-${each.key}"
  port                 = var.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay

  health_check {
    enabled             = true
    path                = var.health_check_path
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = { Color = each.key }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "production" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["blue"].arn
  }

  # deployops moves production traffic between blue and green (DEP-3).
  lifecycle {
    ignore_changes = [default_action]
  }
}

resource "aws_lb_listener" "test" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.test_listener_port
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["green"].arn
  }

  # deployops points the test listener at the idle color before each deployment (DEP-2).
  lifecycle {
    ignore_changes = [default_action]
  }
}

################################################################################
# WAF
################################################################################

resource "aws_wafv2_web_acl" "this" {
  count = var.enable_waf ? 1 : 0

  name        = var.name
  description = "Managed protections for the ${var.name} load balancer"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "AWSManagedRulesAmazonIpReputationList"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-ip-reputation"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 30

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count = var.enable_waf ? 1 : 0

  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this[0].arn
}

resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_338:Retention follows the backup policy (DR-1: logs 90 days), set by log_retention_days.
  count = var.enable_waf ? 1 : 0

  # WAF only logs to groups whose name starts with aws-waf-logs-.
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  count = var.enable_waf ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.this[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]
}

################################################################################
# Service (IAC-3, IAC-4)
################################################################################

resource "aws_ecs_service" "this" {
  # deployment_mode "services" (the guide's procedure): one service per colour, each behind its
  # own target group; green starts idle at 0 tasks and deployops moves the desired counts.
  # "ecs-native": one service; deployops sets ECS's BLUE_GREEN strategy and the
  # advancedConfiguration (alternate target group, listener rules, role) on each deployment.
  for_each = local.service_keys

  name             = var.deployment_mode == "services" ? "${var.name}-${each.key}" : var.name
  cluster          = aws_ecs_cluster.this.arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = each.key == "green" ? 0 : var.min_capacity
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # Rolling update (IAC-4): start new tasks up to 200 % before stopping old ones, never drop
  # below 100 % healthy; the circuit breaker rolls a deployment back when tasks keep failing.
  deployment_maximum_percent         = var.deployment_maximum_percent
  deployment_minimum_healthy_percent = var.deployment_minimum_healthy_percent

  deployment_controller {
    type = "ECS"
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  health_check_grace_period_seconds = var.health_check_grace_period_seconds
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.tasks_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this[each.key == "green" ? "green" : "blue"].arn
    container_name   = var.container_name
    container_port   = var.container_port
  }

  tags = { Color = each.key }

  lifecycle {
    # desired_count: auto scaling and deployops own it (the idle colour runs 0 tasks).
    # task_definition: deployops registers each release. load_balancer: in ecs-native mode
    # deployops adds the advancedConfiguration. alarms: a rolling deploy arms the rollback
    # rules as the deployment's CloudWatch alarms (RB-1).
    ignore_changes = [desired_count, task_definition, load_balancer, alarms]
  }

  # A target group must be attached to a load balancer before a service can use it.
  depends_on = [aws_lb_listener.production, aws_lb_listener.test, aws_iam_role_policy.execution]
}

# ecs-native: the listener rules ECS shifts between the two target groups, and the role it
# uses to do so (AmazonECSInfrastructureRolePolicyForLoadBalancers).
resource "aws_lb_listener_rule" "native" {
  for_each = var.deployment_mode == "ecs-native" ? { production = aws_lb_listener.production.arn, test = aws_lb_listener.test.arn } : {}

  listener_arn = each.value
  priority     = 1

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key == "production" ? "blue" : "green"].arn
  }

  condition {
    path_pattern {
      values = ["/*"]
    }
  }

  # ECS moves the forward weights during each deployment.
  lifecycle {
    ignore_changes = [action]
  }
}

data "aws_iam_policy_document" "ecs_infrastructure_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ecs_infrastructure" {
  count = var.deployment_mode == "ecs-native" ? 1 : 0

  name               = "${var.name}-ecs-infrastructure"
  assume_role_policy = data.aws_iam_policy_document.ecs_infrastructure_assume.json
}

resource "aws_iam_role_policy_attachment" "ecs_infrastructure" {
  count = var.deployment_mode == "ecs-native" ? 1 : 0

  role       = aws_iam_role.ecs_infrastructure[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"
}

################################################################################
# Auto scaling (IAC-3, IAC-5)
################################################################################

resource "aws_appautoscaling_target" "this" {
  for_each = local.service_keys

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this[each.key].name}"
  # The idle colour is held at 0 by deployops (min = max = 0) until it is deployed to.
  min_capacity = each.key == "green" ? 0 : var.min_capacity
  max_capacity = each.key == "green" ? 0 : var.max_capacity

  lifecycle {
    precondition {
      condition     = var.min_capacity >= 1 && var.min_capacity <= var.max_capacity
      error_message = "min_capacity must be at least 1 and not above max_capacity."
    }
    # deployops raises the new colour to min/max and lowers the old one to 0 at each switch.
    ignore_changes = [min_capacity, max_capacity]
  }
}

# Keep average CPU at 70 % (IAC-5). ECS publishes the metric every minute.
resource "aws_appautoscaling_policy" "cpu" {
  for_each = local.service_keys

  name               = "${aws_ecs_service.this[each.key].name}-cpu-target"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target
    scale_in_cooldown  = var.scale_in_cooldown
    scale_out_cooldown = var.scale_out_cooldown

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# Add one task when the monitoring module's HighCPUUtilization or HighMemoryUsage alarm fires
# (MON-1 "scale out"). Works next to target tracking: any policy may scale out, scale-in only
# happens when target tracking asks for it.
resource "aws_appautoscaling_policy" "scale_out" {
  for_each = local.service_keys

  name               = "${aws_ecs_service.this[each.key].name}-alarm-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = var.scale_out_cooldown
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}
