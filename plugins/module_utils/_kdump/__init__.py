# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The distributions' kdump capture services, as kexec_info reports them.

Private to the kernel.kexec collection. Start at ``facts.kdump_facts``: which
service, where its dumps go, the newest dump, and whether the crash reservation
holds the capture kernel. ``facts.add_service_state`` then adds the unit's
state through the module's command runner.
"""
