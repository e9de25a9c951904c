/**
 * `bulwark devices gateway | children | attach-child | detach-child`: gateways and their child
 * devices from the command line (protocol §3.5), through the same service as the HTTP API. A
 * device is named by its serial or its ID.
 */
import type { Command } from 'commander';
import { action, actorForOrganization, deviceIdOf, orgCommand, print, withPlatform, type OrgFlags } from './context.js';

export function registerGatewayCommands(devices: Command): void {
  orgCommand(devices, 'gateway', 'make a device a gateway (it may then register and relay child devices), or --off an ordinary one again')
    .argument('<device>', 'serial or device ID')
    .option('--off', 'make it an ordinary device again (refused while it has children)')
    .action(
      action((ref: string, flags: OrgFlags & { off?: boolean }) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const view = await platform.devices.gateways.setGateway(actor, await deviceIdOf(platform, actor, ref), !flags.off);
          print(flags, { deviceId: view.id, gateway: view.gateway }, () => `${ref} is ${view.gateway ? 'a gateway' : 'not a gateway'}`);
        }),
      ),
    );

  orgCommand(devices, 'children', "list a gateway's children")
    .argument('<gateway>', 'serial or device ID')
    .action(
      action((ref: string, flags: OrgFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const children = await platform.devices.gateways.listChildren(actor, await deviceIdOf(platform, actor, ref));
          print(
            flags,
            { children },
            () => children.map((c) => [c.serial, c.status, c.productId, c.deviceId].join('\t')).join('\n') || 'No children',
          );
        }),
      ),
    );

  orgCommand(devices, 'attach-child', 'attach a device to a gateway (moving it from its gateway, which is cut at once)')
    .argument('<gateway>', 'serial or device ID of the gateway')
    .argument('<device>', 'serial or device ID of the child')
    .action(
      action((gatewayRef: string, childRef: string, flags: OrgFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const child = await platform.devices.gateways.attachChild(
            actor,
            await deviceIdOf(platform, actor, gatewayRef),
            await deviceIdOf(platform, actor, childRef),
          );
          print(flags, child, () => `${child.serial} is a child of ${gatewayRef}`);
        }),
      ),
    );

  orgCommand(devices, 'detach-child', 'detach a child from its gateway (the gateway can no longer speak for it)')
    .argument('<gateway>', 'serial or device ID of the gateway')
    .argument('<device>', 'serial or device ID of the child')
    .action(
      action((gatewayRef: string, childRef: string, flags: OrgFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const childId = await deviceIdOf(platform, actor, childRef);
          await platform.devices.gateways.detachChild(actor, await deviceIdOf(platform, actor, gatewayRef), childId);
          print(flags, { deviceId: childId, gatewayId: null }, () => `${childRef} detached from ${gatewayRef}`);
        }),
      ),
    );
}
