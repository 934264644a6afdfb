"""Figures built with matplotlib's object API (`figures`), with a fence around the libraries that
only draw on pyplot: performance curves, SHAP plots, tuning plots, effect-study plots."""
