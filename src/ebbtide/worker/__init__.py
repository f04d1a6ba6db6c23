"""The worker runtime: turns queue messages into finished work, never losing or doubling any.

Import the pieces from their modules (`ebbtide.worker.intake`, `ebbtide.worker.runtime`); this
package imports nothing heavy so that `ebbtide worker` starts fast.
"""
