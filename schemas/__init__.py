"""The schemas the renderings load at run time (JSON Schema, XSD, RDF vocabulary; see
README.md). A package so that they ship in the wheel and are found through importlib.resources
from a source tree, an editable install and a wheel alike."""
