"""Small helpers every sweeper package may use: durable files, processes, name hints, provenance.

Imports nothing from the rest of sweeper but `sweeper.errors`.
"""
