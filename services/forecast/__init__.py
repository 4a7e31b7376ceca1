"""Capacity forecasting: Prophet with calibrated intervals, baselines, breach risk, what-if.

Importing this package is cheap: Prophet is imported only when a model is fitted.
"""
