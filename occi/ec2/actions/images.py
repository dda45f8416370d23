"""stub"""

ACTIONS: dict = {}
