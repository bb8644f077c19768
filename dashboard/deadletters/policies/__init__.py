"""Retry policies: admins' rules that retry captured letters later, then park them.

``engine`` evaluates the rules on the rows capture has just stored (called by
``store`` in the capture transaction).
"""
