"""Statistics as pure functions returning small result objects: DeLong, Kaplan-Meier, log-rank, Cox."""

from crlm.stats.delong import DeLongResult, delong_test
from crlm.stats.survival import CoxResult, KMResult, LogRankResult, cox_fit, kaplan_meier, logrank

__all__ = ["DeLongResult", "delong_test", "CoxResult", "KMResult", "LogRankResult", "cox_fit", "kaplan_meier",
           "logrank"]
