variable "name" {
  description = "Prefix of the alarm names, SNS topics and KMS alias."
  type        = string
}

################################################################################
# What is watched
################################################################################

variable "cluster_name" {
  description = "ECS cluster of the service (`ClusterName` dimension)."
  type        = string
}

variable "services" {
  description = "The ECS services watched, by colour (blue and green, or native): each gets its own CPU and memory alarms (`ServiceName` dimension), whose scale_out action triggers that service's own policy (null: notify only)."
  type = map(object({
    service_name         = string
    scale_out_policy_arn = optional(string)
  }))
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (`LoadBalancer` dimension)."
  type        = string
}

variable "target_group_arn_suffixes" {
  description = "ARN suffixes of the blue and green target groups (`TargetGroup` dimension): each gets its own HighErrorRate alarm; LowHealthyHosts counts healthy targets across both, since either may be live."
  type = object({
    blue  = string
    green = string
  })
}

variable "db_instance_identifier" {
  description = "DB instance (`DBInstanceIdentifier` dimension)."
  type        = string
}

variable "db_max_connections" {
  description = "max_connections of the database; DatabaseConnections fires above its threshold percentage of this."
  type        = number
}

################################################################################
# Alarms (MON-1)
################################################################################

variable "alarms" {
  description = "Thresholds of the five alarms (MON-1). action: \"scale_out\" also triggers the watched service's scale-out policy (each colour its own), \"notify\" only notifies. severity: \"warning\" goes to the alerts topic, \"critical\" to both the alerts and the critical topic. DatabaseConnections.threshold is a percentage of db_max_connections."
  type = object({
    HighCPUUtilization = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
    HighErrorRate = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
    LowHealthyHosts = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
    HighMemoryUsage = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
    DatabaseConnections = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
  })
  default = {
    HighCPUUtilization = {
      statistic          = "Average"
      threshold          = 80
      comparison         = "GreaterThanOrEqualToThreshold"
      evaluation_periods = 2
      period_seconds     = 60
      action             = "scale_out"
      severity           = "warning"
    }
    HighErrorRate = {
      statistic          = "Sum"
      threshold          = 10
      comparison         = "GreaterThanOrEqualToThreshold"
      evaluation_periods = 1
      period_seconds     = 60
      action             = "notify"
      severity           = "warning"
    }
    LowHealthyHosts = {
      statistic          = "Minimum"
      threshold          = 2
      comparison         = "LessThanThreshold"
      evaluation_periods = 1
      period_seconds     = 60
      action             = "notify"
      severity           = "critical"
    }
    HighMemoryUsage = {
      statistic          = "Average"
      threshold          = 85
      comparison         = "GreaterThanOrEqualToThreshold"
      evaluation_periods = 2
      period_seconds     = 60
      action             = "scale_out"
      severity           = "warning"
    }
    DatabaseConnections = {
      statistic          = "Maximum"
      threshold          = 80
      comparison         = "GreaterThanThreshold"
      evaluation_periods = 1
      period_seconds     = 60
      action             = "notify"
      severity           = "warning"
    }
  }

  validation {
    condition     = alltrue([for a in values(var.alarms) : contains(["scale_out", "notify"], a.action)])
    error_message = "Each alarm's action must be \"scale_out\" or \"notify\"."
  }

  validation {
    condition     = alltrue([for a in values(var.alarms) : contains(["warning", "critical"], a.severity)])
    error_message = "Each alarm's severity must be \"warning\" or \"critical\"."
  }

  validation {
    condition = alltrue([for a in values(var.alarms) : contains([
      "GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold",
    ], a.comparison)])
    error_message = "Each alarm's comparison must be a CloudWatch comparison operator such as GreaterThanOrEqualToThreshold."
  }

  validation {
    # IAC-5: metrics are collected every minute, so periods are whole minutes.
    condition     = alltrue([for a in values(var.alarms) : a.period_seconds >= 60 && a.period_seconds % 60 == 0 && a.evaluation_periods >= 1])
    error_message = "Each alarm's period_seconds must be a multiple of 60 and evaluation_periods at least 1."
  }
}

################################################################################
# Notification channels (MON-2)
################################################################################

variable "alert_emails" {
  description = "E-mail addresses (the on-call rota) subscribed to the alerts topic. Each must confirm the subscription."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "alert_emails must be e-mail addresses."
  }
}

variable "critical_emails" {
  description = "E-mail addresses subscribed to the critical topic."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.critical_emails : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "critical_emails must be e-mail addresses."
  }
}

variable "alert_https_endpoints" {
  description = "HTTPS endpoints subscribed to the alerts topic, for example a relay posting to the Slack #alerts channel."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for u in var.alert_https_endpoints : startswith(u, "https://")])
    error_message = "alert_https_endpoints must be https:// URLs."
  }
}

variable "critical_https_endpoints" {
  description = "HTTPS endpoints subscribed to the critical topic only, for example a PagerDuty CloudWatch integration URL (MON-2: PagerDuty for critical alerts only)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for u in var.critical_https_endpoints : startswith(u, "https://")])
    error_message = "critical_https_endpoints must be https:// URLs."
  }
}
