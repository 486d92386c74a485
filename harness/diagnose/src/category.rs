//! The seven classes Linux 7.3 sorts rejections into
//! (`Verification failed: <Category>: <Problem>`, `kernel/bpf/diagnostics.c`).
//!
//! Every [`Cause`](crate::Cause) belongs to one, so a diagnosis on 5.10
//! names the class 7.3 would print for the same mistake.

use std::fmt;

use serde::{Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// A register holds the wrong kind of value for its use (a nullable or
    /// scalar pointer dereferenced, a wrong argument type).
    RegisterType,
    /// An access outside the memory a pointer may reach (packet, map value,
    /// context, stack).
    Memory,
    /// An acquired object (reference, lock, RCU section) not released, or
    /// used after release.
    ResourceLifetime,
    /// A helper, kfunc or subprogram called with arguments it does not take.
    CallType,
    /// Something the program's context forbids (sleeping in a non-sleepable
    /// program, a lock held where it may not be).
    ExecutionContext,
    /// The shape of the program: loops, stack size, complexity, return values.
    ProgramStructure,
    /// A rule about who may do what: licence, capabilities, the helpers a
    /// program type may call.
    Policy,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::RegisterType,
        Category::Memory,
        Category::ResourceLifetime,
        Category::CallType,
        Category::ExecutionContext,
        Category::ProgramStructure,
        Category::Policy,
    ];

    /// The name as the 7.3 kernel prints it, without its " Safety" suffix.
    pub fn name(self) -> &'static str {
        match self {
            Category::RegisterType => "Register Type",
            Category::Memory => "Memory",
            Category::ResourceLifetime => "Resource Lifetime",
            Category::CallType => "Call Type",
            Category::ExecutionContext => "Execution Context",
            Category::ProgramStructure => "Program Structure",
            Category::Policy => "Policy",
        }
    }

    /// The category a 7.3 header names (`Register Type Safety`, `Memory`).
    pub fn from_kernel(name: &str) -> Option<Category> {
        let name = name.trim();
        let name = name.strip_suffix(" Safety").unwrap_or(name);
        Category::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Category {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_round_trip_with_or_without_the_suffix() {
        for c in Category::ALL {
            assert_eq!(Category::from_kernel(c.name()), Some(c));
            assert_eq!(
                Category::from_kernel(&format!("{} Safety", c.name())),
                Some(c)
            );
        }
        assert_eq!(
            Category::from_kernel("Register Type Safety"),
            Some(Category::RegisterType)
        );
        assert_eq!(Category::from_kernel("Something Else"), None);
    }
}
