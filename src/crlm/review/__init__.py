"""Code review of a pipeline change: `crlm review BASE` (one markdown page comparing the workspace with a git
revision, each headline number read against its seed noise) and `crlm verify` (the committed metrics and report
against what the code produces, for CI on the main branch)."""
