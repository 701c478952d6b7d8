"""course_utils: the one package behind the course notebooks, tests and command line.

Data flows one way: data -> models (layers) -> train -> results -> viz/widgets.
"""

__version__ = "0.1.0"
