"""Pure functions of credit-risk maths, no I/O: discrimination, calibration and gains
(`metrics`), population stability (`stability`), score points and tiers (`scaling`), reason
codes, fairness by group, SHAP attribution summaries and dependence shapes."""
