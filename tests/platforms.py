"""Platform files the tests write: two fp32 accelerators, so an exported mapping computes
exactly what its source model computes (no quantisation anywhere)."""

FP32_PLATFORM = """\
name: twofp32
static_power_w: 0.001
accelerators:
  - name: cpu
    precision: fp32
    cost: {model: roofline, macs_per_s: 1.0e+9, bytes_per_s: 1.0e+9}
    dynamic_power_w: 0.5
  - name: gpu
    precision: fp32
    cost: {model: roofline, macs_per_s: 2.0e+9, bytes_per_s: 1.0e+9, overhead_s: 1.0e-5}
    dynamic_power_w: 1.0
"""
