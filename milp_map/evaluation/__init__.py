"""The single truth for latency, energy and proxy (the evaluator, the schedule timeline) and
what reads it: the mapping check, per-unit reports and result files, plots and Gantt charts."""
