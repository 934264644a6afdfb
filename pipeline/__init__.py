"""loanrisk: loan-default prediction from repayment and relationship (CRM) data."""

__version__ = "0.1.0"
