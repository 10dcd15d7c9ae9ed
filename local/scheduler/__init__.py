"""EventBridge Scheduler, emulated: the templates' schedules fire on the stack's clock."""
