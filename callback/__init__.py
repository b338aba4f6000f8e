"""Click-to-call: web API and widget, number guard, scheduling rules, RQ jobs, telephony."""
