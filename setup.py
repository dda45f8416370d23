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
        # the web console's templates and static files (htmx, Pico CSS: no CDN, no build step)
        "occi.console": ["templates/*.html", "static/*"],
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
        # the `occi` client command (occi/client): its options, tables, HTTP and YAML output
        "click>=8.1",
        "rich>=13",
        "httpx>=0.27",
        "pyyaml>=6",
        # the web console's templates (occi.console)
        "jinja2>=3.1",
    ],
    extras_require={
        "postgresql": ["psycopg[binary]>=3.1"],
        "libvirt": ["libvirt-python>=9"],
        "vsphere": ["pyvmomi>=8"],
        # XenServer / XCP-ng: the XenAPI SDK (one standard-library-only module)
        "xenserver": ["XenAPI>=26"],
        "test": [
            "pytest>=8",
            "requests>=2.31",
            "hypothesis>=6",
            "psycopg[binary]>=3.1",
            "ruff>=0.5",
            "mypy>=1.10",
            # certificates made in the tests (X.509 through HAProxy)
            "trustme>=1.1",
            # the vSphere backend's tests run against VMware's simulator (tests/vcsim)
            "pyvmomi>=8",
            # the XenServer backend's tests talk to the test xapi server through the SDK
            "XenAPI>=26",
            # the web console in a real browser (Debian's chromium, driven by Playwright)
            "playwright>=1.40",
            # the real EC2 clients the EC2 front is tested with (tests/ec2)
            "boto3>=1.34",
            "awscli>=1.32",
        ],
    },
    entry_points={
        "console_scripts": [
            "occi-server=occi.cli:main",
            # the client command: an HTTP client of any OCCI 1.2 server (occi/client)
            "occi=occi.client.cli:main",
            # switches simulated hosts off and on (backends/simulator/power.py)
            "occi-simulator=backends.simulator.power:main",
        ],
        # A backend that needs more than the core names its extra in [brackets]: `occi-server
        # backends` and a refused --backend then say what to install. An extra exists only
        # with its backend (tests/test_packaging.py).
        "occi.backends": [
            "simulator=backends.simulator:SimulatorBackend",
            "libvirt=backends.libvirt:LibvirtBackend [libvirt]",
            "vsphere=backends.vsphere:VsphereBackend [vsphere]",
            "xenserver=backends.xenserver:XenServerBackend [xenserver]",
        ],
        # Each backend's target for the contract suite (backends/contract.py): a backend from
        # another distribution joins the suite by declaring one here too.
        "occi.backend_contracts": [
            "simulator=backends.simulator.contract:TARGET",
            "libvirt=backends.libvirt.contract:TARGET [libvirt]",
            "vsphere=backends.vsphere.contract:TARGET [vsphere]",
            "xenserver=backends.xenserver.contract:TARGET [xenserver]",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Falcon",
        "Topic :: System :: Distributed Computing",
    ],
)
