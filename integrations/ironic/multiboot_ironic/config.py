"""The provision.json and the disk map of a deploy, from step arguments or the node."""

import hashlib
import json
import os
import re
import urllib.parse

import requests

# bareon-ironic's deploy_config_priority default: on a clash of top-level keys the first wins.
SOURCE_PRIORITY = ("instance", "node", "image", "conf")

# A provision.json baked into the ramdisk: bareon-ironic's [bareon]deploy_config ("conf").
DEFAULT_CONFIG_ENV = "MULTIBOOT_IRONIC_DEFAULT_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/multiboot-ironic/provision.json"

FETCH_TIMEOUT = 60
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class ConfigError(Exception):
    """The node's or the step's provision.json cannot be had."""


def check_url(url, what):
    """The reason url cannot be fetched, or None."""
    if not isinstance(url, str) or not url:
        return f"{what} must be a non-empty string, got {type(url).__name__}"
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        return f"{what} must be an http://, https:// or file:// URL, got {url!r}"
    return None


def _fetch(url, what):
    """The bytes at an http(s):// or file:// URL."""
    problem = check_url(url, what)
    if problem:
        raise ConfigError(problem)
    parsed = urllib.parse.urlparse(url)
    try:
        if parsed.scheme == "file":
            with open(urllib.parse.unquote(parsed.path), "rb") as f:
                return f.read()
        response = requests.get(url, timeout=FETCH_TIMEOUT)
        response.raise_for_status()
        return response.content
    except (OSError, requests.RequestException) as e:
        raise ConfigError(f"{what} {url}: cannot fetch: {e}") from e


def fetch_json(url, what, digest=None):
    """The JSON object at an http(s):// or file:// URL, checked against digest (algo, hex)."""
    body = _fetch(url, what)
    if digest:
        algo, expected = digest
        actual = hashlib.new(algo, body).hexdigest()
        if actual != expected.lower():
            raise ConfigError(f"{what} {url}: {algo} is {actual}, expected {expected}")
    try:
        value = json.loads(body)
    except ValueError as e:
        raise ConfigError(f"{what} {url}: not JSON: {e}") from e
    if not isinstance(value, dict):
        raise ConfigError(f"{what} {url}: not a JSON object")
    return value


def _load(ref, what, digest=None):
    """A config given inline (an object, or its JSON text) or by URL."""
    if isinstance(ref, dict):
        return ref
    if isinstance(ref, str) and ref.lstrip().startswith("{"):
        try:
            value = json.loads(ref)
        except ValueError as e:
            raise ConfigError(f"{what}: not JSON: {e}") from e
        if isinstance(value, dict):
            return value
    return fetch_json(ref, what, digest)


def _is_config_url(url):
    # Metal3 has no key of its own for a config: its image URL names the provision.json.
    return urllib.parse.urlparse(url).path.endswith(".json")


def node_config(node):
    """The provision.json bareon-ironic's deploy_config would have built for node.

    Sources, first wins on each top-level key: instance_info's deploy_config_options
    ("instance", "node", "image", as Nova's patch set them), driver_info's deploy_config
    ("node"), an image_source ending in .json ("image") and the ramdisk's default ("conf").
    A config without images gets image_source as its one image, on /.
    """
    instance_info = node.get("instance_info") or {}
    driver_info = node.get("driver_info") or {}
    options = instance_info.get("deploy_config_options") or {}
    if not isinstance(options, dict):
        raise ConfigError("instance_info.deploy_config_options must be an object")
    refs = {k: v for k, v in options.items() if v}
    unknown = sorted(set(refs) - set(SOURCE_PRIORITY))
    if unknown:
        raise ConfigError(f"instance_info.deploy_config_options: unknown source(s) {unknown}")
    if driver_info.get("deploy_config"):
        refs.setdefault("node", driver_info["deploy_config"])
    image_source = instance_info.get("image_source")
    digests = {}
    if isinstance(image_source, str) and _is_config_url(image_source):
        if "image" not in refs:
            refs["image"] = image_source
            # Metal3 puts the image's checksum beside its URL: here the config's.
            digests["image"] = _digest(instance_info, refs["image"])
        image_source = None
    default = os.environ.get(DEFAULT_CONFIG_ENV) or DEFAULT_CONFIG_PATH
    if os.path.exists(default):
        refs.setdefault("conf", "file://" + os.path.abspath(default))
    if not refs:
        raise ConfigError(
            "no provision.json: give the step's provision or provision_url, or set "
            "instance_info.deploy_config_options, driver_info.deploy_config or an "
            "image_source ending in .json"
        )
    config = {}
    for source in reversed(SOURCE_PRIORITY):
        if source in refs:
            config.update(_load(refs[source], f"deploy config ({source})", digests.get(source)))
    return _with_images(config, image_source, instance_info)


def _with_images(config, image_source, instance_info):
    """bareon-ironic's _add_image_deployment_config, without Glance."""
    images = config.get("images")
    if images is None:
        if not image_source:
            raise ConfigError("the provision.json has no images and instance_info no image_source")
        image = {"name": image_source, "image_pull_url": image_source, "target": "/", "boot": True}
        checksum = _sha256(instance_info)
        if checksum:
            image["sha256"] = checksum
        config["images"] = [image]
        return config
    if not isinstance(images, list):
        return config
    # bareon-ironic's image records name their source "url"; the agent read image_pull_url.
    for image in images:
        if isinstance(image, dict) and "url" in image and "image_pull_url" not in image:
            image["image_pull_url"] = image["url"]
    if image_source and not any(isinstance(i, dict) and "boot" in i for i in images):
        for image in images:
            if isinstance(image, dict):
                image["boot"] = image.get("image_pull_url") == image_source
    return config


HASH_LENGTHS = {32: "md5", 64: "sha256", 128: "sha512"}
HEX = re.compile(r"^[0-9a-fA-F]+$")


def _digest(instance_info, url):
    """(algo, hex) for the config at url from image_os_hash_algo and _value, or None.

    As Metal3 passes a BareMetalHost's checksum: the value is the digest or the URL of a
    checksum file ("HEX  NAME" lines, or one HEX), and an empty or "auto" algo is told by
    the digest's length, as Ironic does.
    """
    value = instance_info.get("image_os_hash_value")
    if not value:
        return None
    if not isinstance(value, str):
        raise ConfigError("instance_info.image_os_hash_value must be a string")
    if check_url(value, "image_os_hash_value") is None:
        value = _digest_from_file(value, url)
    if not HEX.match(value) or len(value) not in HASH_LENGTHS:
        raise ConfigError(
            f"instance_info.image_os_hash_value: {value!r} is no md5, sha256 or sha512"
        )
    algo = instance_info.get("image_os_hash_algo") or "auto"
    if algo == "auto":
        algo = HASH_LENGTHS[len(value)]
    if algo not in HASH_LENGTHS.values():
        raise ConfigError(
            f"instance_info.image_os_hash_algo: {algo!r} is not md5, sha256 or sha512"
        )
    return algo, value


def _digest_from_file(checksum_url, url):
    """The digest of url's file in the checksum file at checksum_url."""
    what = "instance_info.image_os_hash_value"
    text = _fetch(checksum_url, what).decode("utf-8", errors="replace")
    name = os.path.basename(urllib.parse.urlparse(url).path)
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for words in lines:
        if len(words) >= 2 and os.path.basename(words[-1].lstrip("*")) == name:
            return words[0]
    if len(lines) == 1 and len(lines[0]) == 1:
        return lines[0][0]
    raise ConfigError(f"{what} {checksum_url}: no checksum for {name}")


def _sha256(instance_info):
    if instance_info.get("image_os_hash_algo") == "sha256":
        value = instance_info.get("image_os_hash_value")
    else:
        value = instance_info.get("image_checksum")
    if isinstance(value, str) and SHA256.match(value):
        return value.lower()
    return None


def config_disks(config):
    """The (id type, id value) of each disk of the config, in order."""
    disks = []
    for entry in config.get("partitions") or []:
        if isinstance(entry, dict) and entry.get("type") == "disk":
            disk_id = entry.get("id")
            if isinstance(disk_id, dict) and isinstance(disk_id.get("value"), str):
                disks.append((disk_id.get("type"), disk_id["value"]))
    return disks


def _strip_dev(path):
    return path[len("/dev/") :] if path.startswith("/dev/") else path


def _matches(id_type, value, device):
    if id_type == "name":
        return device.name in (value, "/dev/" + value)
    if id_type == "path":
        links = [device.name] + ([device.by_path] if device.by_path else [])
        return _strip_dev(value) in [_strip_dev(link) for link in links]
    if id_type == "scsi":
        return device.hctl == value
    return False


def map_disks(config, devices, root_device=None):
    """The --disk NAME=PATH pairs the inventory gives, and whether others remain.

    The config's first disk (which gets the multiboot partition) is the device the root
    device hints pick, when there are hints; the others are the device their id names in
    the inventory. A disk found neither way is left to the deployer's --resolve-disks.
    """
    mapping = {}
    unresolved = False
    for index, (id_type, value) in enumerate(config_disks(config)):
        if index == 0 and root_device:
            mapping[value] = root_device
            continue
        found = [d for d in devices if _matches(id_type, value, d)]
        if len(found) == 1:
            mapping[value] = found[0].name
        else:
            unresolved = True
    return mapping, unresolved
