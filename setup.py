"""Packaging for the OCCI 1.2 server (setuptools; extras per backend)."""

from setuptools import find_packages, setup

setup(
    name="occi-server",
    version="0.1.0",
    description="An OCCI 1.2 cloud interface server: compute, storage and network over HTTP",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["occi", "occi.*", "rendering", "rendering.*", "backends", "backends.*"]),
    include_package_data=True,
    package_data={"occi.store": ["migrations/*.py", "migrations/versions/*.py", "alembic.ini"]},
    # schemas/ (JSON Schema, XSD, RDF vocabulary) is read beside the rendering package: the
    # server runs from the source tree or an editable install (`make run`: pip install -e)
    data_files=[("share/occi-server/schemas", [
        "schemas/occi-1.2.schema.json", "schemas/occi.xsd", "schemas/occi-xs-facets.xsd",
        "schemas/occi.ttl", "schemas/README.md",
    ])],
    install_requires=[
        "falcon>=4,<5",
        "gunicorn>=22",
        "sqlalchemy>=2.0,<3",
        "alembic>=1.13",
        "lxml>=5",
        "rdflib>=7",
        "jsonschema>=4",
        # attribute patterns are matched by RE2: linear time whatever a client's pattern
        "google-re2>=1.1",
    ],
    extras_require={
        "postgresql": ["psycopg[binary]>=3.1"],
        "libvirt": ["libvirt-python>=9"],
        "vsphere": ["pyvmomi>=8"],
        "xenserver": ["XenAPI>=23"],
        "test": [
            "pytest>=8",
            "requests>=2.31",
            "hypothesis>=6",
            "psycopg[binary]>=3.1",
            "ruff>=0.5",
        ],
    },
    entry_points={
        "console_scripts": ["occi-server=occi.cli:main"],
        "occi.backends": [
            "simulator=backends.simulator:SimulatorBackend",
            "libvirt=backends.libvirt:LibvirtBackend",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Falcon",
        "Topic :: System :: Distributed Computing",
    ],
)
