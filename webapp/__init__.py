"""CarML's Flask web application and REST API (built on the core `carml` package).

The application factory and blueprints are added with the service; importing this package has no
side effects.
"""
