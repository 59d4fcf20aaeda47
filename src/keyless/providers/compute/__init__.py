"""``Microsoft.Compute/virtualMachines`` and ``Microsoft.Web/sites``: places a process runs *as*."""
