"""reconciler: GitOps for Lofty CRM leads.

Data flows one way: lead files -> validated model -> plan -> (render | apply) -> state.
"""

__version__ = "0.1.0"
