"""mlthreat: threat modelling and security assessment of whole machine-learning pipelines."""

__version__ = "0.1.0"
