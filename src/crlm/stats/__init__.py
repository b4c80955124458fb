"""Statistics as pure functions returning small result objects: DeLong, Kaplan-Meier, log-rank, Cox, and more.

Import each from its module (crlm.stats.delong, ...): this file imports nothing, so that a stage that reads one
statistic depends on that module alone."""
