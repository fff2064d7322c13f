"""Training: the loop, its state, one iteration, the schedule, records, grids, the health monitor and speed measurement."""
