"""VST-R: chain-of-thought data (teacher and offline), the rule-checkable RL set and the pass@k
difficulty filter (paper Sec. 2.2, Table 10, appendix C.1)."""
