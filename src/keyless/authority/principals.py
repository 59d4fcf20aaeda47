"""The directory's principals under the name modules written before ``keyless.directory`` use.

Their one home is ``keyless.directory.principals``; new code imports it from there.
"""

from keyless.directory.principals import *  # noqa: F403
