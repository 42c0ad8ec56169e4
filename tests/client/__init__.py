"""The service seen through the published qiskit cold-atom client (SPEC §8)."""
