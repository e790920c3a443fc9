# The five CloudWatch alarms of the guide (MON-1) and the notification topics behind them
# (MON-2). Every alarm notifies the alerts topic; critical ones also the critical topic
# (PagerDuty); "scale_out" ones also trigger a scale-out policy.
#
# One set per colour: blue and green swap roles on every deployment, so CPU and memory are
# watched per ECS service (each alarm scales out its own service, never the idle one's) and
# the 5XX count per target group. LowHealthyHosts sums both groups (either may be live);
# DatabaseConnections watches the one database.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  topics = {
    alerts   = aws_sns_topic.alerts.arn
    critical = aws_sns_topic.critical.arn
  }

  notify = {
    for name, a in var.alarms : name => (
      a.severity == "critical" ? [local.topics.alerts, local.topics.critical] : [local.topics.alerts]
    )
  }

  # alarm -> service colour -> actions: a scale_out alarm of one colour scales that colour.
  alarm_actions = {
    for name, a in var.alarms : name => {
      for key, svc in var.services : key => concat(
        a.action == "scale_out" && svc.scale_out_policy_arn != null ? [svc.scale_out_policy_arn] : [],
        local.notify[name],
      )
    }
  }

  # Alarms over both colours (LowHealthyHosts, DatabaseConnections): every service's policy.
  shared_actions = {
    for name, a in var.alarms : name => concat(
      a.action == "scale_out" ? compact([for svc in values(var.services) : svc.scale_out_policy_arn]) : [],
      local.notify[name],
    )
  }

  # The service behind each target group: its own colour, or the one service (ecs-native).
  target_group_service = {
    for tg in keys(var.target_group_arn_suffixes) : tg => (
      contains(keys(var.services), tg) ? tg : sort(keys(var.services))[0]
    )
  }

  # MON-1 "> 80 % of max": the percentage is configured, the absolute count derived from it.
  db_connections_threshold = floor(var.db_max_connections * var.alarms.DatabaseConnections.threshold / 100)
}

################################################################################
# Topics (MON-2), encrypted with a dedicated key
################################################################################

data "aws_iam_policy_document" "kms" {
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

  # CloudWatch alarms publish to the encrypted topics, so they need the data key.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "sns" {
  description             = "${var.name}: alarm notification topics"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "sns" {
  name          = "alias/${var.name}-alarms"
  target_key_id = aws_kms_key.sns.key_id
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  display_name      = "${var.name} alerts"
  kms_master_key_id = aws_kms_key.sns.arn
}

resource "aws_sns_topic" "critical" {
  name              = "${var.name}-critical-alerts"
  display_name      = "${var.name} CRITICAL"
  kms_master_key_id = aws_kms_key.sns.arn
}

data "aws_iam_policy_document" "topic" {
  for_each = local.topics

  statement {
    sid       = "AccountPublishAndManage"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:ListSubscriptionsByTopic"]
    resources = [each.value]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [each.value]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  for_each = local.topics

  arn    = each.value
  policy = data.aws_iam_policy_document.topic[each.key].json
}

resource "aws_sns_topic_subscription" "alert_email" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "critical_email" {
  for_each = toset(var.critical_emails)

  topic_arn = aws_sns_topic.critical.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "alert_https" {
  for_each = toset(var.alert_https_endpoints)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "https"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "critical_https" {
  for_each = toset(var.critical_https_endpoints)

  topic_arn              = aws_sns_topic.critical.arn
  protocol               = "https"
  endpoint               = each.value
  endpoint_auto_confirms = true
}

################################################################################
# Alarms (MON-1)
################################################################################

resource "aws_cloudwatch_metric_alarm" "high_cpu" {
  for_each = var.services

  alarm_name        = "${var.name}-${each.key}-HighCPUUtilization"
  alarm_description = "MON-1: ${each.value.service_name} CPU >= ${var.alarms.HighCPUUtilization.threshold}% for ${var.alarms.HighCPUUtilization.evaluation_periods} periods; action ${var.alarms.HighCPUUtilization.action}."

  namespace   = "AWS/ECS"
  metric_name = "CPUUtilization"
  dimensions = {
    ClusterName = var.cluster_name
    ServiceName = each.value.service_name
  }
  statistic           = var.alarms.HighCPUUtilization.statistic
  period              = var.alarms.HighCPUUtilization.period_seconds
  evaluation_periods  = var.alarms.HighCPUUtilization.evaluation_periods
  threshold           = var.alarms.HighCPUUtilization.threshold
  comparison_operator = var.alarms.HighCPUUtilization.comparison
  # An idle colour runs no task and publishes nothing: no data is no alarm.
  treat_missing_data = "missing"

  alarm_actions = local.alarm_actions.HighCPUUtilization[each.key]
  ok_actions    = local.notify.HighCPUUtilization
}

resource "aws_cloudwatch_metric_alarm" "high_error_rate" {
  for_each = tomap(var.target_group_arn_suffixes)

  alarm_name        = "${var.name}-${each.key}-HighErrorRate"
  alarm_description = "MON-1: >= ${var.alarms.HighErrorRate.threshold} target 5XX responses per ${var.alarms.HighErrorRate.period_seconds}s in the ${each.key} target group; notify at once."

  namespace   = "AWS/ApplicationELB"
  metric_name = "HTTPCode_Target_5XX_Count"
  dimensions = {
    LoadBalancer = var.alb_arn_suffix
    TargetGroup  = each.value
  }
  statistic           = var.alarms.HighErrorRate.statistic
  period              = var.alarms.HighErrorRate.period_seconds
  evaluation_periods  = var.alarms.HighErrorRate.evaluation_periods
  threshold           = var.alarms.HighErrorRate.threshold
  comparison_operator = var.alarms.HighErrorRate.comparison
  # The load balancer publishes no 5XX datapoint when there were no 5XX responses.
  treat_missing_data = "notBreaching"

  alarm_actions = local.alarm_actions.HighErrorRate[local.target_group_service[each.key]]
  ok_actions    = local.notify.HighErrorRate
}

resource "aws_cloudwatch_metric_alarm" "low_healthy_hosts" {
  alarm_name        = "${var.name}-LowHealthyHosts"
  alarm_description = "MON-1: fewer than ${var.alarms.LowHealthyHosts.threshold} healthy targets across the blue and green target groups; critical."

  # Blue and green swap roles on every deployment, so count healthy targets in both.
  evaluation_periods  = var.alarms.LowHealthyHosts.evaluation_periods
  threshold           = var.alarms.LowHealthyHosts.threshold
  comparison_operator = var.alarms.LowHealthyHosts.comparison
  # No data means no healthy target reported at all.
  treat_missing_data = "breaching"

  metric_query {
    id          = "healthy"
    expression  = "FILL(blue, 0) + FILL(green, 0)"
    label       = "HealthyHostCount (blue + green)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = tomap(var.target_group_arn_suffixes)

    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = "HealthyHostCount"
        period      = var.alarms.LowHealthyHosts.period_seconds
        stat        = var.alarms.LowHealthyHosts.statistic
        dimensions = {
          LoadBalancer = var.alb_arn_suffix
          TargetGroup  = metric_query.value
        }
      }
    }
  }

  alarm_actions = local.shared_actions.LowHealthyHosts
  ok_actions    = local.notify.LowHealthyHosts
}

resource "aws_cloudwatch_metric_alarm" "high_memory" {
  for_each = var.services

  alarm_name        = "${var.name}-${each.key}-HighMemoryUsage"
  alarm_description = "MON-1: ${each.value.service_name} memory >= ${var.alarms.HighMemoryUsage.threshold}% for ${var.alarms.HighMemoryUsage.evaluation_periods} periods; action ${var.alarms.HighMemoryUsage.action}."

  namespace   = "AWS/ECS"
  metric_name = "MemoryUtilization"
  dimensions = {
    ClusterName = var.cluster_name
    ServiceName = each.value.service_name
  }
  statistic           = var.alarms.HighMemoryUsage.statistic
  period              = var.alarms.HighMemoryUsage.period_seconds
  evaluation_periods  = var.alarms.HighMemoryUsage.evaluation_periods
  threshold           = var.alarms.HighMemoryUsage.threshold
  comparison_operator = var.alarms.HighMemoryUsage.comparison
  treat_missing_data  = "missing"

  alarm_actions = local.alarm_actions.HighMemoryUsage[each.key]
  ok_actions    = local.notify.HighMemoryUsage
}

resource "aws_cloudwatch_metric_alarm" "database_connections" {
  alarm_name        = "${var.name}-DatabaseConnections"
  alarm_description = "MON-1: more than ${var.alarms.DatabaseConnections.threshold}% of max_connections (${local.db_connections_threshold} of ${var.db_max_connections}); warning."

  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = var.db_instance_identifier }
  statistic           = var.alarms.DatabaseConnections.statistic
  period              = var.alarms.DatabaseConnections.period_seconds
  evaluation_periods  = var.alarms.DatabaseConnections.evaluation_periods
  threshold           = local.db_connections_threshold
  comparison_operator = var.alarms.DatabaseConnections.comparison
  treat_missing_data  = "missing"

  alarm_actions = local.shared_actions.DatabaseConnections
  ok_actions    = local.notify.DatabaseConnections
}
