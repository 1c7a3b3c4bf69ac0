"""trtexec, TensorRT's own benchmark program: parse what it prints (every version from 5.x to
11.x), parse its ``--exportTimes`` JSON, and build its command line for the version at hand."""
from .command import (TrtexecSettings, UnsupportedVersion, build_command, parse_version,
                      time_command)
from .parse import parse_export_times, parse_log

__all__ = ["TrtexecSettings", "UnsupportedVersion", "build_command", "parse_export_times",
           "parse_log", "parse_version", "time_command"]
