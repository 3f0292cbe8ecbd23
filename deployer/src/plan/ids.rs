use uuid::Uuid;

/// Hands out the UUIDs the plan assigns, so that fstab, `root=UUID=` and boot-info.json
/// can be written from the plan.
pub trait IdSource {
    /// A filesystem UUID (for vfat, its last four bytes become the volume id).
    fn filesystem_uuid(&mut self) -> Uuid;
    /// A GPT unique partition GUID.
    fn partition_uuid(&mut self) -> Uuid;
}

/// Random version-4 UUIDs, for real deployments.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn filesystem_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }

    fn partition_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }
}

/// Predictable UUIDs for tests and reproducible plans: the n-th filesystem UUID is
/// `00000000-0000-4000-a000-00000000000n` and the n-th partition GUID
/// `00000000-0000-4000-b000-00000000000n` (n in hexadecimal, counting from 1).
#[derive(Debug, Default, Clone, Copy)]
pub struct SequentialIds {
    filesystems: u64,
    partitions: u64,
}

impl SequentialIds {
    fn uuid(variant: u128, counter: &mut u64) -> Uuid {
        *counter += 1;
        Uuid::from_u128((0x4000 << 64) | (variant << 48) | u128::from(*counter))
    }
}

impl IdSource for SequentialIds {
    fn filesystem_uuid(&mut self) -> Uuid {
        SequentialIds::uuid(0xa000, &mut self.filesystems)
    }

    fn partition_uuid(&mut self) -> Uuid {
        SequentialIds::uuid(0xb000, &mut self.partitions)
    }
}
