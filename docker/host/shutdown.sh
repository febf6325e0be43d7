#!/bin/bash
# `shutdown` for a host container: there is no init system to power off, so end PID 1 (the
# entry script), which stops the container — what powering off does to an instance.
echo "shutdown $*: powering off host container" | tee -a /var/log/spotscribe-shutdown.log >&2
kill -TERM 1
