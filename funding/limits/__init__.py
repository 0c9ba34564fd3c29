"""Rate limits: what an anonymous visitor or a member may repeat at our cost, counted in the
database so that every web process shares the same counters."""
