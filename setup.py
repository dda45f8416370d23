"""Packaging for the OCCI 1.2 server (setuptools; extras per backend)."""

from setuptools import find_packages, setup

#: the top-level packages: the server, the renderings, the backends, the schemas they load
TOP = ("occi", "rendering", "backends", "schemas")

setup(
    name="occi-server",
    version="0.1.0",
    description="An OCCI 1.2 cloud interface server: compute, storage and network over HTTP",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    # Every directory of code is a package (tests/test_packaging.py checks that the wheel holds
    # every file of the tree); the data they read at run time is package data, found through
    # importlib.resources.
    packages=find_packages(include=[f"{top}{sub}" for top in TOP for sub in ("", ".*")]),
    # the packages sit at the top of the tree: an editable install is then one .pth entry, and
    # setuptools has nothing to warn about (its meta-path finder prints a notice on every install)
    package_dir={"": "."},
    package_data={
        "schemas": ["*.json", "*.xsd", "*.ttl", "README.md"],
        "backends": ["README.md"],
        "occi.store.migrations": ["script.py.mako"],
    },
    install_requires=[
        "falcon>=4,<5",
        "gunicorn>=22",
        "sqlalchemy>=2.0,<3",
        "alembic>=1.13",
        "lxml>=5",
        "rdflib>=7",
        "jsonschema>=4",
        "prometheus_client>=0.20",
        # attribute patterns are matched by RE2: linear time whatever a client's pattern
        "google-re2>=1.1",
        # password hashes (argon2id)
        "argon2-cffi>=23.1",
        # OIDC bearer tokens (JWT signatures) and X.509 client certificate subjects
        "PyJWT[crypto]>=2.8",
        "cryptography>=42",
    ],
    extras_require={
        "postgresql": ["psycopg[binary]>=3.1"],
        "libvirt": ["libvirt-python>=9"],
        "test": [
            "pytest>=8",
            "requests>=2.31",
            "hypothesis>=6",
            "psycopg[binary]>=3.1",
            "ruff>=0.5",
            "mypy>=1.10",
            # certificates made in the tests (X.509 through HAProxy)
            "trustme>=1.1",
            # the real EC2 clients the EC2 front is tested with (tests/ec2)
            "boto3>=1.34",
            "awscli>=1.32",
        ],
    },
    entry_points={
        "console_scripts": [
            "occi-server=occi.cli:main",
            # switches simulated hosts off and on (backends/simulator/power.py)
            "occi-simulator=backends.simulator.power:main",
        ],
        # A backend that needs more than the core names its extra in [brackets]: `occi-server
        # backends` and a refused --backend then say what to install. An extra exists only
        # with its backend (tests/test_packaging.py).
        "occi.backends": [
            "simulator=backends.simulator:SimulatorBackend",
            "libvirt=backends.libvirt:LibvirtBackend [libvirt]",
        ],
        # Each backend's target for the contract suite (backends/contract.py): a backend from
        # another distribution joins the suite by declaring one here too.
        "occi.backend_contracts": [
            "simulator=backends.simulator.contract:TARGET",
            "libvirt=backends.libvirt.contract:TARGET [libvirt]",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Falcon",
        "Topic :: System :: Distributed Computing",
    ],
)
